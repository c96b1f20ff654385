from bazaar_common.wsgi import make_wsgi_application

application = make_wsgi_application(service="catalog", package="catalog_service")
