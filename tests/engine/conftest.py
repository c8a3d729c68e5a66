import pytest
from memory_world import MemoryProvider, RecordingReporter


@pytest.fixture
def memory():
    return MemoryProvider()


@pytest.fixture
def reporter():
    return RecordingReporter()
