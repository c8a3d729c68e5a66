"""The shipped specs load into the model they describe: values, defaults, resolved paths and source positions."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from reconciler.spec.loader import check_files, load_spec
from reconciler.spec.model import (
    Bucket, Checkpoint, CheckpointSource, Cluster, CpuNodes, GoogleServiceAccount, HttpServer, Identity,
    KubernetesServiceAccount, Model, ModelServer, Project, Sax, Server, TpuPool,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "specs").glob("*.yaml"))
IMAGES = "us-docker.pkg.dev/cloud-tpu-images/inference/"


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.name)
def test_shipped_specs_are_valid(path: Path):
    assert check_files([str(path)], environ={}) == []


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.name)
def test_shipped_specs_point_editors_at_the_schema(path: Path):
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/saxdeployment.schema.json"


def test_the_tutorial_spec_loads_into_the_tutorial_setup():
    path = REPO / "specs" / "gptj-v5e-2x2.yaml"
    spec = load_spec(str(path), environ={})
    assert (spec.api_version, spec.kind, spec.name) == ("saxctl/v1", "SaxDeployment", "gptj-demo")
    assert spec.project == Project(id="saxctl-demo", region="us-central1")
    assert spec.cluster == Cluster(
        name="saxml", location="us-central1-a", release_channel="RAPID",
        cpu_nodes=CpuNodes(count=2, machine_type="e2-standard-4"),
        tpu_pools=(TpuPool(name="tpu", machine_type="ct5lp-hightpu-4t", topology="2x2", nodes=1),),
    )
    assert spec.buckets.admin == Bucket(name="saxctl-demo-sax-admin", location="US")
    assert spec.buckets.data == Bucket(name="saxctl-demo-sax-data", location="US")
    assert spec.buckets.admin.uniform_access is True
    assert spec.identity == Identity(
        kubernetes_service_account=KubernetesServiceAccount(namespace="default", name="sax-sa"),
        google_service_account=GoogleServiceAccount(name="sax-iam-sa", project_roles=("roles/storage.admin",)),
    )
    assert spec.sax == Sax(
        cell="/sax/test",
        admin_server=Server(image=IMAGES + "sax-admin-server:v1.1.0", replicas=1),
        model_server=ModelServer(image=IMAGES + "sax-model-server:v1.1.0", pool="tpu", replicas=1),
        http_server=HttpServer(image=IMAGES + "sax-http:v1.0.0", port=8888, exposure="internal", replicas=1),
    )
    # The local source is resolved against the spec's directory, and need not exist to load (plan checks it).
    assert dict(spec.checkpoints) == {"gptj-6b": Checkpoint(
        name="gptj-6b",
        source=CheckpointSource(format="hf-gptj", path=str(REPO / "specs" / "fine_tuned_pt_checkpoint")),
        destination="gs://saxctl-demo-sax-data/checkpoints/checkpoint_00000000",
    )}
    assert spec.models == (Model(name="gptj4bf16bs32", model_path="saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32",
                                 checkpoint="gptj-6b", replicas=1),)


def test_positions_point_at_the_values_in_the_file():
    path = REPO / "specs" / "gptj-v5e-2x2.yaml"
    spec = load_spec(str(path), environ={})
    lines = path.read_text().splitlines()
    assert spec.source.file == str(path)

    def text_at(field_path: str, length: int) -> str:
        line, column = spec.source.positions[field_path]
        return lines[line - 1][column - 1:column - 1 + length]

    assert text_at("cluster.tpuPools[0].topology", 3) == "2x2"
    assert text_at("cluster.tpuPools[0]", 1) == "{"
    assert text_at("buckets.data.name", 20) == "saxctl-demo-sax-data"
    assert text_at("models[0].modelPath", 5) == "saxml"
    assert text_at("checkpoints.gptj-6b.source.path", 19) == "${GPTJ_CHECKPOINT:-"
    assert text_at("identity.googleServiceAccount.projectRoles[0]", 19) == "roles/storage.admin"
    # Every value in the file has a position, and a path under a located one falls back to it.
    assert set(spec.source.positions) == _field_paths(YAML(typ="safe").load(path.read_text()))
    assert spec.source.locate("sax.httpServer.port") == spec.source.positions["sax.httpServer.port"]
    assert spec.source.locate("buckets.admin.labels") == spec.source.positions["buckets.admin"]


def _field_paths(value, path: str = "") -> set[str]:
    paths = {path}
    if isinstance(value, dict):
        for key, child in value.items():
            paths |= _field_paths(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths |= _field_paths(child, f"{path}[{index}]")
    return paths


def test_defaults_fill_what_the_spec_leaves_out():
    spec = load_spec(str(REPO / "specs" / "gptj-v5e-2x4-multihost.yaml"), environ={})
    assert spec.sax.http_server == HttpServer(image=IMAGES + "sax-http:v1.0.0", port=8888, exposure="internal",
                                              replicas=1)
    assert spec.sax.admin_server.replicas == 1 and spec.sax.model_server.replicas == 1
    assert spec.models[0].replicas == 1
    assert spec.buckets.data.storage_class is None and spec.buckets.data.versioning is None
    assert dict(spec.buckets.data.labels) == {}
    assert spec.cluster.tpu_pools == (TpuPool(name="tpu-2x4", machine_type="ct5lp-hightpu-4t", topology="2x4",
                                              nodes=2),)


def test_the_minimal_spec_has_only_buckets():
    spec = load_spec(str(REPO / "specs" / "buckets-only.yaml"), environ={})
    assert (spec.cluster, spec.identity, spec.sax, dict(spec.checkpoints), spec.models) == (None, None, None, {}, ())
    assert spec.buckets.admin.uniform_access is True


def _global_names(spec) -> list[str]:
    """What two deployments must not share: the objects the spec names, and its ownership mark."""
    names = [f"metadata.name {spec.name}", f"bucket {spec.buckets.admin.name}", f"bucket {spec.buckets.data.name}"]
    if spec.cluster is not None:
        names.append(f"cluster {spec.project.id}/{spec.cluster.location}/{spec.cluster.name}")
    if spec.identity is not None:
        names.append(f"service account {spec.identity.google_service_account.name}@{spec.project.id}")
    return names


def test_ready_to_copy_specs_never_collide():
    """Applied one after another (the demo, then another spec) in one project, none blocks or takes over another:
    each spec owns its buckets, cluster and service account, and marks them with its own name."""
    owner_of: dict[str, str] = {}
    collisions = []
    for path in SPECS:
        for name in _global_names(load_spec(str(path), environ={})):
            if name in owner_of:
                collisions.append(f"{name}: {owner_of[name]} and {path.name}")
            owner_of[name] = path.name
    assert len(SPECS) >= 3 and collisions == []


def test_the_multihost_spec_takes_its_project_from_the_environment():
    spec = load_spec(str(REPO / "specs" / "gptj-v5e-2x4-multihost.yaml"), environ={"PROJECT_ID": "my-project"})
    assert spec.project.id == "my-project"
    assert (spec.buckets.admin.name, spec.buckets.data.name) == ("my-project-sax-admin-mh", "my-project-sax-data-mh")
    assert spec.models[0].checkpoint == "gs://my-project-sax-data-mh/llama7b/checkpoint_00000000"


def test_every_bucket_field_reaches_the_model(tmp_path):
    path = tmp_path / "buckets.yaml"
    path.write_text("""apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: demo}
project: {id: saxctl-demo, region: us-central1}
buckets:
  admin: {name: saxctl-demo-sax-admin, location: us-central1, storageClass: NEARLINE, uniformAccess: false,
          versioning: true, labels: {team: ml, cost-center: "42", empty: ""}}
  data: {name: data.saxctl-demo.example.com, location: EUR4}
""")
    spec = load_spec(str(path), environ={})
    assert spec.buckets.admin == Bucket(name="saxctl-demo-sax-admin", location="us-central1", storage_class="NEARLINE",
                                        uniform_access=False, versioning=True,
                                        labels={"team": "ml", "cost-center": "42", "empty": ""})
    assert spec.buckets.data.name == "data.saxctl-demo.example.com"
    with pytest.raises(TypeError):
        spec.buckets.admin.labels["team"] = "other"  # the model is immutable


def test_checkpoint_paths_resolve_against_the_spec_directory_not_the_working_directory(tmp_path, monkeypatch):
    spec_dir = tmp_path / "deploy"
    spec_dir.mkdir()
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text()
    (spec_dir / "spec.yaml").write_text(text.replace("path: ${GPTJ_CHECKPOINT:-./fine_tuned_pt_checkpoint}", "path: ../weights/gptj"))
    monkeypatch.chdir(REPO)
    spec = load_spec(str(spec_dir / "spec.yaml"), environ={})
    assert spec.checkpoints["gptj-6b"].source.path == str(tmp_path / "weights" / "gptj")


def test_gs_sources_and_gs_model_checkpoints_are_kept_as_written(tmp_path):
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text()
    text = text.replace("path: ${GPTJ_CHECKPOINT:-./fine_tuned_pt_checkpoint}", "path: gs://saxctl-demo-sax-data/hf/gptj")
    text = text.replace("    checkpoint: gptj-6b\n", "    checkpoint: gs://other-data/ckpt/checkpoint_00000100/\n")
    (tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(str(tmp_path / "spec.yaml"), environ={})
    assert spec.checkpoints["gptj-6b"].source.path == "gs://saxctl-demo-sax-data/hf/gptj"
    assert spec.models[0].checkpoint == "gs://other-data/ckpt/checkpoint_00000100/"


def test_public_exposure_is_an_explicit_opt_in(tmp_path):
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text().replace("exposure: internal", "exposure: public")
    (tmp_path / "spec.yaml").write_text(text)
    assert load_spec(str(tmp_path / "spec.yaml"), environ={}).sax.http_server.exposure == "public"


def test_release_channel_defaults_to_gke_default(tmp_path):
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text().replace("  releaseChannel: RAPID\n", "")
    (tmp_path / "spec.yaml").write_text(text)
    assert load_spec(str(tmp_path / "spec.yaml"), environ={}).cluster.release_channel == "REGULAR"
