# CDK targets, included by the main Makefile (which defines VENV, PY and $(VENV)/.installed).
# The CDK CLI is pinned in package.json; the app is `.venv/bin/python -m infra.app` (cdk.json).
# Synth works offline with no AWS credentials: only a region is needed (AWS_REGION, default eu-west-1 here).
CDK := npx --no-install cdk
CDK_REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),eu-west-1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# cfn-lint findings accepted on CDK output (see tests/infra/test_checks.py):
#   W3005  redundant DependsOn that aws-cdk-lib adds from each function to its role's policy
CFN_LINT_IGNORE := W3005

.PHONY: synth deploy destroy cdk-check diff

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

synth: $(VENV)/.installed node_modules/.installed  ## cdk synth (bundles the Lambda asset with pip, no Docker; cdk-nag on)
	AWS_REGION=$(CDK_REGION) $(CDK) synth --quiet

diff: $(VENV)/.installed node_modules/.installed  ## cdk diff against the deployed stack (needs AWS credentials)
	$(CDK) diff

deploy: $(VENV)/.installed node_modules/.installed  ## cdk deploy (needs AWS credentials; bootstrap the account once first)
	$(CDK) deploy --require-approval broadening

destroy: $(VENV)/.installed node_modules/.installed  ## cdk destroy (data is kept unless retainData=false)
	$(CDK) destroy

cdk-check: $(VENV)/.installed node_modules/.installed  ## CI: clean synth (cdk-nag fails on findings) + cfn-lint
	rm -rf cdk.out
	AWS_REGION=$(CDK_REGION) $(CDK) synth --quiet -c allowExampleGateway=true
	$(VENV)/bin/cfn-lint --ignore-checks $(CFN_LINT_IGNORE) -- cdk.out/*.template.json
