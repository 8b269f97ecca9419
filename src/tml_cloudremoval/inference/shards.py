"""``inference.shard: "i/n"``: the part of a folder of scenes one machine cleans.

A shard is ``i/n`` with ``0 <= i < n`` (0-based, as ``SLURM_ARRAY_TASK_ID`` of an array
``--array=0-<n-1>`` and ``JOB_COMPLETION_INDEX`` of a Kubernetes indexed job are). The distinct
scene ids of the folder are sorted and dealt round robin: the k-th id (0-based) belongs to shard
``k mod n`` (:func:`shard_positions`). Why round robin over the sorted ids:

- balanced: part sizes differ by at most one scene. A hash of the id (sha256 mod n, which keeps
  a scene's shard when scenes are added) is balanced only in expectation: for the 175 scene ids
  of SEN12MS-CR it gives 8 ... 30 scenes per shard at n = 8 (ideal 21.9: the slowest task
  1.37 x longer) and 4 ... 18 at n = 16 (1.65 x); an array ends with its slowest task;
- deterministic: the same folder gives every task the same split, disjoint, together every
  scene (tested for n = 1 ... 5); scenes with the same id (which would write the same products)
  are in the same shard, whose checks report them;
- adding scenes moves others to other shards, which costs nothing: outputs do not depend on the
  shard, and a scene whose complete output exists is skipped by whichever shard gets it
  (``inference.resume``). What it needs is that every task lists the same folder: stage the
  scenes before the array starts (the plan and the run summary record the number of scenes
  listed and a digest of their ids, :func:`listing_digest`, so a task that saw another folder
  shows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` (None: no sharding); ``ValueError`` saying what is wrong.

    Spaces around the numbers are allowed (``" 3 / 8 "``); ``i`` and ``n`` are integers with
    ``n >= 1`` and ``0 <= i < n``."""
    if text is None:
        return None
    parts = str(text).split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(
            f'must be "i/n" with integers 0 <= i < n (e.g. "0/8"; 0-based, as '
            f"SLURM_ARRAY_TASK_ID of --array=0-7), or null; got {text!r}"
        )
    index, count = (int(p) for p in parts)
    if count < 1:
        raise ValueError(f"the number of shards n must be at least 1, got {text!r}")
    if index >= count:
        raise ValueError(
            f"shard index {index} is not below the number of shards {count} (0-based: "
            f"0 <= i < {count}; for a Slurm array use --array=0-{count - 1}); got {text!r}"
        )
    return index, count


def listing_digest(scene_ids: Iterable[str]) -> str:
    """The first 12 hex digits of SHA-256 of the sorted distinct ids, one per line: equal for
    tasks that listed the same scenes."""
    text = "\n".join(sorted(set(scene_ids)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def shard_positions(scene_ids: Iterable[str], count: int) -> dict[str, int]:
    """{scene id: its shard 0 ... ``count`` - 1}: the sorted distinct ids dealt round robin."""
    return {sid: k % count for k, sid in enumerate(sorted(set(scene_ids)))}


def select_shard(items: Sequence[T], shard: str | None, key: Callable[[T], str]) -> list[T]:
    """The items of shard ``shard`` (``"i/n"``; None: all) among ``items``, in their order;
    ``key``: the scene id of an item (items with the same id go together)."""
    parsed = parse_shard(shard)
    if parsed is None:
        return list(items)
    index, count = parsed
    positions = shard_positions((key(item) for item in items), count)
    return [item for item in items if positions[key(item)] == index]


def shard_label(shard: str | None) -> str:
    """A file-name part naming the shard: ``"shard-3-of-8"``, ``"all"`` without sharding."""
    parsed = parse_shard(shard)
    return "all" if parsed is None else f"shard-{parsed[0]}-of-{parsed[1]}"
