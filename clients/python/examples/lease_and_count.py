"""Lease a key from keypool, use it, complete the lease, print the key's count.

    KEYPOOL_URL=http://127.0.0.1:3000 KEYPOOL_POOL=stability python lease_and_count.py
"""
import os
import sys

from keypool_client import Keypool, NoUsableKey

pool = Keypool(os.environ.get("KEYPOOL_URL", "http://127.0.0.1:3000")).pool(os.environ.get("KEYPOOL_POOL", "stability"))
try:
    with pool.lease() as key:
        # Call the provider with key.api_key here; leaving the block normally completes the
        # lease as success (an exception completes it as unknown and propagates).
        print(f"leased {key.key_id} (used {key.usage_count} times before)")
except NoUsableKey as dry:
    sys.exit(str(dry))  # why the pool is dry, and when a resting key comes back if one does
print(f"completed as {key.outcome}: {key.key_id} has now been used {key.completion.usage_count} times")
