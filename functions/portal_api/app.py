from chalice import Chalice

app = Chalice(app_name="hemera-portal-api")


@app.route("/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
