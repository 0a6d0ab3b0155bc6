// Cold-start stand-in written the way a Node Lambda would be: build the AWS SDK v3
// clients the Rust function builds (names in argv), then ask the Runtime API for the
// first event. The bench harness times this process from spawn to that request.
"use strict";
const http = require("node:http");

const PACKAGES = {
  cloudwatch: ["@aws-sdk/client-cloudwatch", "CloudWatchClient"],
  codedeploy: ["@aws-sdk/client-codedeploy", "CodeDeployClient"],
  dynamodb: ["@aws-sdk/client-dynamodb", "DynamoDBClient"],
  eventbridge: ["@aws-sdk/client-eventbridge", "EventBridgeClient"],
  lambda: ["@aws-sdk/client-lambda", "LambdaClient"],
  s3: ["@aws-sdk/client-s3", "S3Client"],
  scheduler: ["@aws-sdk/client-scheduler", "SchedulerClient"],
  sns: ["@aws-sdk/client-sns", "SNSClient"],
  sqs: ["@aws-sdk/client-sqs", "SQSClient"],
  ssm: ["@aws-sdk/client-ssm", "SSMClient"],
};

const clients = process.argv.slice(2).map((name) => {
  const [pkg, cls] = PACKAGES[name];
  return new (require(pkg)[cls])({});
});

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
http
  .get({ host, port: Number(port), path: "/2018-06-01/runtime/invocation/next" }, (res) => res.resume())
  .on("error", () => process.exit(1));
