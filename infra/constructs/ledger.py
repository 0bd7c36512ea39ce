"""The ledger: one item per export result, the state of its copy; one per export, its watermark."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from exportlake.adapters.ledgerindex import INDEX_DEFINITION, UNFINISHED
from infra.config import Config


class Ledger(Construct):
    """DynamoDB, on demand, point-in-time recovery; protected from deletion while data is retained.

    The index of unfinished results (``adapters.ledgerindex``) is a sparse global secondary index. Adding it to a
    table deployed before is an in-place update (UpdateTable: same table, same items, no replacement); it builds
    from the items carrying ``unfinished``, and the planner tags the older unfinished ones on its first run.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="export_name", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="result_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=config.retain_data,
            removal_policy=config.removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=INDEX_DEFINITION["IndexName"],
            partition_key=dynamodb.Attribute(name=UNFINISHED, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="result_id", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
