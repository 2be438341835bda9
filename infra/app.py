"""CDK entry point (`cdk.json` runs it): `cdk synth`, `cdk deploy`, `cdklocal deploy`."""

from hemera_infra.application import build_app

if __name__ == "__main__":
    build_app().synth()
