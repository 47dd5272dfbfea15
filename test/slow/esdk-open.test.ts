/**
 * Every case of the sweeps of openMessage against the ESDK's decrypt
 * (test/support/esdk-open-sweeps.ts): every single-byte flip and every truncation of several
 * kinds of message, and 300 valid ones. The unit project runs a seeded sample of each
 * (test/unit/esdk-open.test.ts, with the point cases).
 */
import { describeSweeps } from '../support/esdk-open-sweeps.js';
import { printTallyAfterAll } from '../support/esdk-oracle.js';
import { EVERY } from '../support/sweep.js';

printTallyAfterAll();
describeSweeps(EVERY);
