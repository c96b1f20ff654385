"""A GIN index for the catalog's full-text search, on PostgreSQL only.

The expression is exactly the one ``selectors._search`` builds (with the default ``english``
configuration), so PostgreSQL can answer ``q`` from the index instead of scanning every product.
Other databases use a plain ``icontains`` search and get no index.
"""

from django.db import migrations

SEARCH_EXPRESSION = (
    "((setweight(to_tsvector('english'::regconfig, COALESCE(\"name\", '')), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, COALESCE(\"sku\", '')), 'A'))"
    " || setweight(to_tsvector('english'::regconfig, COALESCE(\"description\", '')), 'B'))"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS product_search_idx ON products_product USING gin ({SEARCH_EXPRESSION})"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS product_search_idx")


class Migration(migrations.Migration):
    dependencies = [("products", "0002_role_group_permissions")]

    operations = [migrations.RunPython(create_index, drop_index)]
