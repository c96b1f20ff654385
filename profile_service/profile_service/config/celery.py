from bazaar_common.celery import make_celery_app

app = make_celery_app("profiles", package="profile_service")
