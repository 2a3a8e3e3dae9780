from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Board",
            fields=[
                (
                    "slug",
                    models.SlugField(max_length=40, primary_key=True, serialize=False),
                ),
                ("x", models.IntegerField()),
                ("y", models.IntegerField()),
                (
                    "seq",
                    models.PositiveBigIntegerField(default=0, help_text="Number of applied moves."),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
