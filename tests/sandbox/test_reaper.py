"""A sandbox whose owner dies is stopped by the reaper (what keeps a killed test session from leaking emulators)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SAXCTL = str(Path(sys.executable).with_name("saxctl"))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_reaper_stops_the_sandbox_when_its_owner_dies(tmp_path):
    env = {**os.environ, "SAXCTL_SANDBOX_DIR": str(tmp_path)}
    subprocess.run([SAXCTL, "sandbox", "up"], env=env, capture_output=True, check=True, timeout=280)
    pids = [row["pid"] for row in json.loads((tmp_path / "state.json").read_text())["emulators"].values()]
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper = subprocess.Popen([sys.executable, "-m", "reconciler.sandbox.reaper", "--owner", str(owner.pid),
                               "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert all(alive(pid) for pid in pids), "nothing is stopped while the owner lives"
        owner.kill()
        owner.wait()
        output, _ = reaper.communicate(timeout=20)
        assert reaper.returncode == 0
        assert not any(alive(pid) for pid in pids) and not (tmp_path / "state.json").exists()
    finally:
        owner.kill()
        reaper.kill()
        subprocess.run([SAXCTL, "sandbox", "down"], env=env, capture_output=True, timeout=60)
