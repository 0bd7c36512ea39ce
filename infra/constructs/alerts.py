"""Notifications and monitoring: the KMS-encrypted topic, alarms routed to it, and a dashboard."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from exportlake.domain import metricnames as m
from infra.config import Config

#: Powertools Metrics: namespace = POWERTOOLS_METRICS_NAMESPACE, one dimension ``service``.
METRICS_NAMESPACE = m.NAMESPACE
METRICS_DIMENSIONS = {"service": m.SERVICE}
ALARM_PERIOD = cdk.Duration.minutes(5)
#: Runtime metrics that must stay at zero: alarm name → (metric, what a non-zero value means).
ZERO_METRIC_ALARMS = {
    "ResultsExpiredAlarm": (m.RESULTS_EXPIRED, "export results expired on the gateway before they were copied"),
    "ResultsExpiringAlarm": (m.RESULTS_EXPIRING, "export results not copied yet expire soon on the gateway"),
    "RunsFailedAlarm": (
        m.RUNS_FAILED,
        "a sync run failed as a whole (credentials, secret or gateway; see the sync.failed notice)",
    ),
    "ItemsInvalidAlarm": (m.ITEMS_INVALID, "items from the gateway failed validation and were skipped"),
}


def runtime_metric(name: str, period: cdk.Duration, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric the runtime emits through Powertools."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=METRICS_DIMENSIONS,
        statistic=statistic,
        period=period,
    )


class Alerts(Construct):
    """The topic both functions publish to (``result.copied``, ``sync.failed``…) and alarms publish to."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.key = kms.Key(
            self,
            "TopicKey",
            description="exportlake: encrypts the notifications topic",
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(7),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # CloudWatch alarms publish to an encrypted topic only if the service can use the key.
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="exportlake notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in config.notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarms: list[cloudwatch.Alarm] = []

    def _alarm(self, name: str, description: str, **props: object) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(self, name, alarm_description=description, **props)  # type: ignore[arg-type]
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    def watch_queue(self, name: str, queue: sqs.IQueue, what: str) -> cloudwatch.Alarm:
        """An alarm while a dead-letter queue holds any message."""
        return self._alarm(
            name,
            f"exportlake: {what}",
            metric=queue.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def watch(
        self,
        *,
        planner: lambda_.IFunction,
        copier: lambda_.IFunction,
        copy_dlq: sqs.IQueue,
        schedule_dlq: sqs.IQueue,
        failed_runs: sqs.IQueue,
    ) -> None:
        """Alarms on DLQ depth, function errors, failure metrics and data freshness, the dashboard, and the topic
        policy that lets these alarms publish."""
        above_zero = {
            "threshold": 0,
            "evaluation_periods": 1,
            "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
        }
        for name, queue, what in (
            ("CopyDlqAlarm", copy_dlq, "copy jobs failed every retry and wait in the copy-jobs DLQ"),
            ("ScheduleDlqAlarm", schedule_dlq, "the scheduler could not invoke the planner (see the schedule DLQ)"),
            ("FailedRunsAlarm", failed_runs, "planner runs failed after Lambda's retries (see the failed-runs queue)"),
        ):
            self._alarm(
                name,
                f"exportlake: {what}",
                metric=queue.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
                **above_zero,
            )
        for name, fn in (("PlannerErrorsAlarm", planner), ("CopierErrorsAlarm", copier)):
            self._alarm(
                name,
                f"exportlake: the {name.removesuffix('ErrorsAlarm').lower()} function reported errors",
                metric=fn.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                **above_zero,
            )
        for name, (metric_name, what) in ZERO_METRIC_ALARMS.items():
            self._alarm(name, f"exportlake: {what}", metric=runtime_metric(metric_name, ALARM_PERIOD), **above_zero)
        hours = self.config.freshness_hours
        self.freshness = self._alarm(
            "FreshnessAlarm",
            f"exportlake: no export result copied in the last {hours} hour(s)",
            metric=runtime_metric(m.RESULTS_COPIED, cdk.Duration.hours(hours)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

        hour = cdk.Duration.hours(1)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.days(7))
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Results and rows copied",
                left=[runtime_metric(m.RESULTS_COPIED, hour)],
                right=[runtime_metric(m.ROWS_COPIED, hour)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Bytes copied / lag (s)",
                left=[runtime_metric(m.BYTES_COPIED, hour)],
                right=[runtime_metric(m.LAG_SECONDS, hour, "Maximum")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[planner.metric_errors(period=ALARM_PERIOD), copier.metric_errors(period=ALARM_PERIOD)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Copier duration (ms)",
                left=[copier.metric_duration(period=ALARM_PERIOD, statistic="Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    copy_dlq.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
                    schedule_dlq.metric_approximate_number_of_messages_visible(
                        period=ALARM_PERIOD, statistic="Maximum"
                    ),
                    failed_runs.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Results queued / failed / expired",
                left=[runtime_metric(n, hour) for n in (m.RESULTS_ENQUEUED, m.RESULTS_FAILED, m.RESULTS_EXPIRED)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Expiring soon / failed runs / invalid items",
                left=[runtime_metric(n, hour) for n in (m.RESULTS_EXPIRING, m.RUNS_FAILED, m.ITEMS_INVALID)],
                width=12,
            ),
        )
        self._allow_alarms_to_publish()

    def _allow_alarms_to_publish(self) -> None:
        # A topic policy replaces SNS's default one, and the one enforce_ssl creates holds only the TLS Deny: without
        # this Allow no alarm could deliver. Scoped to this account's alarms of this stack (confused deputy).
        stack = cdk.Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublish",
                effect=iam.Effect.ALLOW,
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms]},
                },
            )
        )
