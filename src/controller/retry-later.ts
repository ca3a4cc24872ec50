// A reconcile or sweep that should be retried with backoff: an expected wait (a token refresh that
// failed, writes while this replica is not the leader), not a defect. The message is safe to log.
export class RetryLater extends Error {
  override readonly name = "RetryLater";
}
