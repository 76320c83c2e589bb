"""How `tagsmith batch` sizes its actors to the cluster (no Ray needed)."""

from __future__ import annotations

import pytest

from tagsmith.errors import InputError
from tagsmith.ray_tagging import RaySettings, actor_count, actor_cpus


def test_default_share_leaves_the_feeding_stages_a_cpu_share():
    assert actor_cpus(RaySettings(), 2, 2) == 0.75  # two actors may not hold both CPUs
    assert actor_cpus(RaySettings(), 64, 2) == 1.0  # one each where there is room
    assert actor_cpus(RaySettings(gpus_per_actor=1), 3, 4) == 0.625


def test_an_explicit_share_that_starves_the_reader_is_a_user_error():
    assert actor_cpus(RaySettings(cpus_per_actor=0.5), 2, 2) == 0.5
    with pytest.raises(InputError, match="leave no CPU for reading"):
        actor_cpus(RaySettings(cpus_per_actor=1), 2, 2)
    with pytest.raises(InputError, match="too few"):
        actor_cpus(RaySettings(), 0.4, 1)
    with pytest.raises(InputError):
        RaySettings(cpus_per_actor=0)


def test_the_pool_is_one_actor_per_node_or_per_gpu_share_unless_asked():
    assert actor_count(RaySettings(), nodes=1, cluster_gpus=0) == 1  # a laptop: one engine uses every core
    assert actor_count(RaySettings(), nodes=3, cluster_gpus=0) == 3
    assert actor_count(RaySettings(gpus_per_actor=1), nodes=2, cluster_gpus=8) == 8
    assert actor_count(RaySettings(gpus_per_actor=0.5), nodes=1, cluster_gpus=1) == 2
    assert actor_count(RaySettings(actors=5), nodes=1, cluster_gpus=0) == 5
