/** A local stack that cannot start, in one line that says what to do (`npm start` prints it). */
export class LocalStackError extends Error {
  override readonly name = 'LocalStackError';
}
