/**
 * The chunk bucket: every NAR chunk atticd stores, as `<uuid>.chunk` at the bucket root. atticd's
 * database records the bucket by name, so the bucket is protected and retained on delete: losing or
 * renaming it orphans the whole cache. What keeps it private, encrypted, versioned and TLS-only is
 * retained with it (a `pulumi destroy` would otherwise leave a retained bucket without its public
 * access block, policy and lifecycle rules).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../config/schema";

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string[];
  Resource: pulumi.Input<string>[];
  Principal?: unknown;
  Condition?: unknown;
}

export interface ChunkStorageArgs {
  storage: AwsConfig["storage"];
}

/** S3 never tiers objects under 128 KiB to Intelligent-Tiering (they would be billed as 128 KiB). */
export const TIERING_MIN_OBJECT_BYTES = 128 * 1024;

/**
 * Owner-enforced (no ACLs) and every public access block on: a bucket nobody outside can reach.
 * `retainOnDelete` for a retained bucket: its protections stay with it.
 */
export function makePrivate(
  name: string,
  bucket: pulumi.Input<string>,
  parent: pulumi.Resource,
  retainOnDelete = false,
): void {
  const opts = { parent, ...(retainOnDelete ? { retainOnDelete } : {}) };
  new aws.s3.BucketOwnershipControls(
    name,
    { bucket, rule: { objectOwnership: "BucketOwnerEnforced" } },
    opts,
  );
  new aws.s3.BucketPublicAccessBlock(
    name,
    {
      bucket,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
    opts,
  );
}

/** The bucket policy statement refusing every request that does not use TLS. */
export function denyInsecureTransport(bucketArn: pulumi.Input<string>) {
  return {
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, pulumi.interpolate`${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

export class ChunkStorage extends pulumi.ComponentResource {
  public readonly bucket: aws.s3.Bucket;
  public readonly bucketName: pulumi.Output<string>;
  public readonly bucketArn: pulumi.Output<string>;
  private readonly kmsKeyArn?: string;

  constructor(name: string, args: ChunkStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Storage", name, {}, opts);
    const s = args.storage;
    const child = { parent: this };
    this.kmsKeyArn = s.kmsKeyArn;

    this.bucket = new aws.s3.Bucket(
      `${name}-chunks`,
      { forceDestroy: false },
      { ...child, protect: true, retainOnDelete: true },
    );
    this.bucketName = this.bucket.bucket;
    this.bucketArn = this.bucket.arn;
    const bucket = this.bucket.id;

    makePrivate(`${name}-chunks`, bucket, this, true);
    const retained = { ...child, retainOnDelete: true };
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-chunks`,
      {
        bucket,
        rules: [
          s.kmsKeyArn
            ? {
                applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: s.kmsKeyArn },
                bucketKeyEnabled: true,
              }
            : { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
        ],
      },
      retained,
    );
    new aws.s3.BucketVersioning(
      `${name}-chunks`,
      { bucket, versioningConfiguration: { status: "Enabled" } },
      retained,
    );
    // Only TLS. No VPC-endpoint-only condition: clients follow atticd's presigned 307 redirects to S3
    // from anywhere.
    new aws.s3.BucketPolicy(
      `${name}-chunks`,
      {
        bucket,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [denyInsecureTransport(this.bucketArn)],
        }),
      },
      retained,
    );
    // atticd owns deletion (its GC): no rule ever expires a current object.
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-chunks`,
      {
        bucket,
        rules: [
          {
            id: "abort-incomplete-multipart-uploads",
            status: "Enabled",
            filter: {},
            abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
          },
          {
            id: "intelligent-tiering",
            status: "Enabled",
            filter: { objectSizeGreaterThan: TIERING_MIN_OBJECT_BYTES },
            transitions: [{ days: s.intelligentTieringAfterDays, storageClass: "INTELLIGENT_TIERING" }],
          },
          {
            // With versioning on, a delete leaves a noncurrent version and a delete marker: expire both
            // or the bucket never shrinks after GC.
            id: "expire-noncurrent-versions",
            status: "Enabled",
            filter: {},
            noncurrentVersionExpiration: { noncurrentDays: s.noncurrentVersionExpirationDays },
            expiration: { expiredObjectDeleteMarker: true },
          },
        ],
      },
      retained,
    );
    this.registerOutputs({ bucketName: this.bucketName });
  }

  /** What atticd needs on the chunks: read, write and delete objects, abort uploads, list. Nothing else. */
  grantReadWrite(): PolicyStatement[] {
    const kms: PolicyStatement[] = this.kmsKeyArn
      ? [
          {
            Sid: "AtticChunkEncryption",
            Effect: "Allow",
            Action: ["kms:Decrypt", "kms:GenerateDataKey"],
            Resource: [this.kmsKeyArn],
          },
        ]
      : [];
    return [
      {
        Sid: "AtticChunkObjects",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        Resource: [pulumi.interpolate`${this.bucketArn}/*`],
      },
      {
        Sid: "AtticChunkBucket",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: [this.bucketArn],
      },
      ...kms,
    ];
  }
}
