"""How `tagsmith batch` sizes its actors to the cluster (no Ray needed)."""

from __future__ import annotations

import pytest

from tagsmith.errors import InputError
from tagsmith.ray_tagging import RaySettings, actor_cpus


def test_default_share_leaves_the_feeding_stages_a_cpu_share():
    assert actor_cpus(RaySettings(actors=2), 2) == 0.75  # two actors may not hold both CPUs
    assert actor_cpus(RaySettings(actors=2), 64) == 1.0  # one each where there is room
    assert actor_cpus(RaySettings(actors=4, gpus_per_actor=1), 3) == 0.625


def test_an_explicit_share_that_starves_the_reader_is_a_user_error():
    assert actor_cpus(RaySettings(actors=2, cpus_per_actor=0.5), 2) == 0.5
    with pytest.raises(InputError, match="leave no CPU for reading"):
        actor_cpus(RaySettings(actors=2, cpus_per_actor=1), 2)
    with pytest.raises(InputError, match="too few"):
        actor_cpus(RaySettings(), 0.4)
    with pytest.raises(InputError):
        RaySettings(cpus_per_actor=0)
