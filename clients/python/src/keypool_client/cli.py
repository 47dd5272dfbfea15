"""
`python -m keypool_client --list` / `--find --max-uses=3`: the old test_stability_api_key.py
flags over keypool. Both read the pool's listing (an operator's route) and never print a full
secret: keys are shown by keypool's mask.

`--find` shows the key a lease would take now without taking a use, as the old `--find` did: it
lists the pool and picks by keypool's leasing rule (a usable key with the fewest uses, then the
least recently used, then the oldest; the cap is the lower of `--max-uses` and the pool's). It is
a reading, not a reservation: a lease made after it may take another key, and in a pool spread
over several shards each lease starts from one shard's head, not the pool's.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

from .client import KeyInfo, Keypool
from .compat import DEFAULT_POOL
from .errors import KeypoolError

# Statuses a lease may take (a cooling key whose rest is over is listed as active).
_LEASABLE = ("active",)


def lease_order(keys: Sequence[KeyInfo], max_uses: int) -> List[KeyInfo]:
    """The usable keys in the order keypool leases them: fewest uses, least recently used (or imported), id."""
    usable = [key for key in keys if key.status in _LEASABLE and key.usage_count <= max_uses]
    return sorted(usable, key=lambda key: (key.usage_count, key.last_used_at or key.created_at, key.key_id))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keypool_client",
        description="List a keypool pool's keys, or show the key a lease would take now. Never prints a full secret.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="one line per key: masked key, count, status, last used")
    action.add_argument("--find", action="store_true", help="the key a lease would take now: id, masked key, count")
    parser.add_argument("--max-uses", type=int, help="with --find: a cap lower than the pool's (default: the pool's)")
    parser.add_argument("--pool", default=None, help=f"default: KEYPOOL_POOL, else {DEFAULT_POOL}")
    parser.add_argument("--url", default=None, help="keypool's API URL (default: KEYPOOL_URL)")
    parser.add_argument(
        "--region",
        default=None,
        help="SigV4 region (default: the URL's, else AWS_REGION, else AWS_DEFAULT_REGION or the profile's)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    url = args.url or os.environ.get("KEYPOOL_URL", "").strip()
    if not url:
        print("keypool: set KEYPOOL_URL (or pass --url) to keypool's API URL", file=sys.stderr)
        return 2
    if args.max_uses is not None and args.max_uses < 0:
        print("keypool: --max-uses is a whole number >= 0", file=sys.stderr)
        return 2
    name = args.pool or os.environ.get("KEYPOOL_POOL", "").strip() or DEFAULT_POOL
    try:
        with Keypool(url, args.region or os.environ.get("AWS_REGION") or None) as client:
            pool = client.pool(name)
            if args.list:
                for key in pool.keys():
                    print(
                        f"{key.masked_key}  usage_count={key.usage_count}  status={key.status}"
                        f"  last_used={key.last_used_at or 'never'}"
                    )
                return 0
            cap = pool.policy().max_uses
            max_uses = cap if args.max_uses is None else min(args.max_uses, cap)
            order = lease_order(list(pool.keys()), max_uses)
            if not order:
                print(f"keypool: pool {name} has no usable key with usage_count <= {max_uses}", file=sys.stderr)
                return 1
            key = order[0]
            print(f"{key.key_id}  {key.masked_key}  usage_count={key.usage_count}")
            return 0
    except (KeypoolError, ValueError) as error:
        print(f"keypool: {error}", file=sys.stderr)
        return 1
