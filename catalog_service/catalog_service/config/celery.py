from bazaar_common.celery import make_celery_app

app = make_celery_app("catalog", package="catalog_service")
