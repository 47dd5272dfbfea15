// @ts-check
// Lease a key from keypool, use it, complete the lease, print the key's count.
//   KEYPOOL_URL=http://127.0.0.1:3000 KEYPOOL_POOL=stability node lease-and-count.js
import console from 'node:console';
import process from 'node:process';
import { Keypool, NoUsableKey } from '@keypool/client';

const pool = new Keypool({ url: process.env.KEYPOOL_URL ?? 'http://127.0.0.1:3000' }).pool(process.env.KEYPOOL_POOL);
try {
  const lease = await pool.lease();
  // Call the provider with lease.apiKey here; success keeps the use counted (failure gives it back).
  console.log(`leased ${lease.keyId} (used ${lease.usageCount} times before)`);
  const key = await lease.complete('success');
  console.log(`completed as ${lease.outcome}: ${lease.keyId} has now been used ${key?.usageCount} times`);
} catch (error) {
  if (!(error instanceof NoUsableKey)) throw error;
  console.error(error.message); // why the pool is dry, and when a resting key comes back if one does
  process.exitCode = 1;
}
