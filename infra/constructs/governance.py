"""Lake Formation grants (``lakeFormation`` in cdk.json): for accounts whose Data Catalog is governed by Lake Formation.

In such an account (the Data Catalog settings do not give ``IAM_ALLOWED_PRINCIPALS`` ALL on new databases and tables)
IAM alone no longer lets a role create, change or read a table: each Glue call also needs a Lake Formation permission
(docs/deploy.md#2-lake-formation). This construct grants each function's role exactly the permissions its Glue calls
need (``exportlake.iam.lf_permissions``, derived from its IAM grants) and each reader SELECT and DESCRIBE on every
table and view of the database. Table grants use ``TableWildcard``: they cover the tables the runtime creates for new
export types too. Without the option the stack holds no Lake Formation resource at all.

CloudFormation creates these grants with the deploy role, which must be a data lake administrator.
"""

from __future__ import annotations

import hashlib

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lakeformation as lakeformation
from constructs import Construct

from exportlake import iam as permissions


class Governance(Construct):
    """``AWS::LakeFormation::PrincipalPermissions`` per principal and resource (database, its tables)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: glue.CfnDatabase,
        database_name: str,
        roles: dict[str, iam.IRole],
        readers: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self._database = database
        self._database_name = database_name
        self._account = cdk.Stack.of(self).account
        #: Per function: its grants, for the resources that must wait for them (the tables function's tables).
        self.grants: dict[str, list[lakeformation.CfnPrincipalPermissions]] = {}
        for function, role in roles.items():
            needed = permissions.lf_permissions(function)
            self.grants[function] = [
                self._grant(f"{function.capitalize()}{where.capitalize()}", role.role_arn, where, perms)
                for where, perms in needed.items()
            ]
        self.reader_grants: list[lakeformation.CfnPrincipalPermissions] = []
        for reader in readers:
            # A stable id per ARN (not its position in the list): reordering the readers replaces nothing.
            tag = hashlib.sha256(reader.encode()).hexdigest()[:10]
            for where, perms in permissions.LF_READERS.items():
                self.reader_grants.append(self._grant(f"Reader{tag}{where.capitalize()}", reader, where, perms))

    def _grant(
        self, construct_id: str, principal: str, where: str, perms: tuple[str, ...]
    ) -> lakeformation.CfnPrincipalPermissions:
        if where == permissions.LF_DATABASE:
            resource = lakeformation.CfnPrincipalPermissions.ResourceProperty(
                database=lakeformation.CfnPrincipalPermissions.DatabaseResourceProperty(
                    catalog_id=self._account, name=self._database_name
                )
            )
        else:
            resource = lakeformation.CfnPrincipalPermissions.ResourceProperty(
                table=lakeformation.CfnPrincipalPermissions.TableResourceProperty(
                    catalog_id=self._account, database_name=self._database_name, table_wildcard={}
                )
            )
        grant = lakeformation.CfnPrincipalPermissions(
            self,
            construct_id,
            principal=lakeformation.CfnPrincipalPermissions.DataLakePrincipalProperty(
                data_lake_principal_identifier=principal
            ),
            resource=resource,
            permissions=list(perms),
            permissions_with_grant_option=[],  # required by the resource; nobody re-grants
        )
        # The database name is a plain string in the resource: the dependency is not in the properties.
        grant.add_dependency(self._database)
        return grant
