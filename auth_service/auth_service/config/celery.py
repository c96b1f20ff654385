from bazaar_common.celery import make_celery_app

app = make_celery_app("auth", package="auth_service")
