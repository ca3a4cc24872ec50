// Labels and annotations the operator puts on what it writes.
import { GROUP } from "../../api/crd.ts";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "ecr-creds-refresher";
/** Label selector matching every Secret the operator manages; the Secret informer watches only these. */
export const MANAGED_SECRETS_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
/** Names the ECRPullSecret that owns a managed Secret. */
export const OWNER_LABEL = `${GROUP}/owner`;
export const EXPIRES_AT_ANNOTATION = `${GROUP}/expires-at`;
export const REFRESHED_AT_ANNOTATION = `${GROUP}/refreshed-at`;
/**
 * A one-way hash of the AWS identity that minted the token, so that a restarted operator can reuse
 * the token in its Secrets (no AWS call, no rewrite) only when it would use the same identity.
 */
export const IDENTITY_ANNOTATION = `${GROUP}/identity`;
/**
 * A digest of the Secret's content and of the three annotations above, as the operator wrote them.
 * The operator lists its Secrets by their metadata alone: one whose data no other client wrote
 * (managedFields) holds the content of its digest, which one whole read tells for all of them.
 */
export const CONTENT_DIGEST_ANNOTATION = `${GROUP}/content-digest`;
/** The field manager of the operator's writes: managedFields then tells which fields another client wrote. */
export const FIELD_MANAGER = "ecr-creds-refresher";
/**
 * On a ServiceAccount: the imagePullSecrets entries the operator added (comma-separated Secret names),
 * so that clean-up removes those and never an entry someone else put there.
 */
export const ADDED_PULL_SECRETS_ANNOTATION = `${GROUP}/added-image-pull-secrets`;
export const FINALIZER = `${GROUP}/cleanup`;
