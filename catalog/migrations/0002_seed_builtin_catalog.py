from django.db import migrations


def seed_builtin(apps, schema_editor):
    from catalog.seed import seed

    seed(apps.get_model("catalog", "Model"), apps.get_model("catalog", "ModelAlias"))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(seed_builtin, migrations.RunPython.noop)]
