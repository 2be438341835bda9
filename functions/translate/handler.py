def lambda_handler(event: dict, context: object) -> dict:  # replaced by the real handler
    raise NotImplementedError
