"""Create the demo's admin user and a few notes, once."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from demo.models import Note


class Command(BaseCommand):
    help = "Create the demo superuser (admin / admin) and some notes if they are missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=8000,
            help="The port `make demo` serves on (PORT=...), for the URL printed (default 8000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        if not Note.objects.exists():
            Note.objects.bulk_create(Note(text=f"note {n}") for n in range(1, 4))
        url = f"http://127.0.0.1:{options['port']}/"
        self.stdout.write(f"Demo ready: {url} (admin: {url}admin/, user admin, password admin)")
