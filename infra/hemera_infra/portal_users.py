"""The portal's users: a Cognito user pool whose ID tokens the Customer Portal API accepts.

Groups and custom attributes come from `hemera.definitions`, as the local cloud's pool on moto
does (`hemera_local.identity`), so a token means the same in both. Users are created by the
utility (admin API), never by self sign-up: a `custom:tenant` must be granted, not claimed.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from hemera.definitions import (
    USER_POOL_CLIENT_ID_ENV_VAR,
    USER_POOL_CLIENT_NAME,
    USER_POOL_CUSTOM_ATTRIBUTES,
    USER_POOL_GROUPS,
    USER_POOL_ID_ENV_VAR,
    USER_POOL_NAME,
)
from hemera_infra.nag import acknowledge

MFA_REASON = (
    "MFA is optional (TOTP) until the portal front end offers enrolment; users are created by the "
    "utility with a temporary password, and threat protection (ENFORCED) blocks risky sign-ins."
)


class PortalUsers(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = self._build_user_pool()
        self.groups = [self._build_group(name) for name in USER_POOL_GROUPS]
        self.client = self._build_client()

    @property
    def environment(self) -> dict[str, str]:
        """What the portal API needs to verify a token: the pool (issuer) and the app client."""
        return {
            USER_POOL_ID_ENV_VAR: self.user_pool.user_pool_id,
            USER_POOL_CLIENT_ID_ENV_VAR: self.client.user_pool_client_id,
        }

    def _build_user_pool(self) -> cognito.UserPool:
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=USER_POOL_NAME,
            self_sign_up_enabled=False,
            sign_in_case_sensitive=False,
            custom_attributes={
                # Mutable so that the utility can move a user; only admins can write them (the
                # app client's write attributes leave them out).
                name: cognito.StringAttribute(mutable=True)
                for name in USER_POOL_CUSTOM_ATTRIBUTES
            },
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
        )
        acknowledge(pool, "AwsSolutions-COG2", MFA_REASON)
        return pool

    def _build_group(self, name: str) -> cognito.UserPoolGroup:
        return cognito.UserPoolGroup(
            self, f"Group{name.capitalize()}", user_pool=self.user_pool, group_name=name
        )

    def _build_client(self) -> cognito.UserPoolClient:
        return self.user_pool.add_client(
            "PortalClient",
            user_pool_client_name=USER_POOL_CLIENT_NAME,
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            generate_secret=False,  # a browser front end keeps no secret
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1),
            # Users read their tenant/customer but can never write them (that would cross tenants).
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True)
            .with_custom_attributes(*USER_POOL_CUSTOM_ATTRIBUTES),
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True),
        )
