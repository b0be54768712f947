"""Tests of the demo, run by ``manage.py test`` (also with --parallel)."""

from django.db import connection
from django.test import TestCase, TransactionTestCase

from .models import Note


class NoteTests(TestCase):
    def test_runs_on_the_test_database(self) -> None:
        self.assertTrue(connection.settings_dict["NAME"].startswith("test_"))
        Note.objects.create(text="written by a test")
        self.assertEqual(Note.objects.count(), 1)


class NoteTransactionTests(TransactionTestCase):
    def test_commits_on_the_test_database(self) -> None:
        self.assertTrue(connection.settings_dict["NAME"].startswith("test_"))
        Note.objects.create(text="committed by a test")
        self.assertEqual(Note.objects.count(), 1)


class MoreNoteTests(TestCase):
    def test_counts(self) -> None:
        Note.objects.bulk_create(Note(text=str(i)) for i in range(3))
        self.assertEqual(Note.objects.count(), 3)
