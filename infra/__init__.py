"""The exportlake CDK app: one stack that deploys the whole pipeline (see ``docs/deploy.md``)."""
