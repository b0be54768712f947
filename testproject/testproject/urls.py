from django.contrib import admin
from django.urls import path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notes/count/", views.note_count, name="note-count"),
    path("notes/add/", views.add_note, name="add-note"),
    path("async/count/", views.async_note_count, name="async-note-count"),
    path("sleep/", views.sleep, name="sleep"),
    path("admin/", admin.site.urls),
]
