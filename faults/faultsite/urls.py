from django.urls import path

from . import views

urlpatterns = [
    path("health", views.health),
    path("q", views.query),
    path("aq", views.async_query),
    path("sleep", views.sleep),
    path("stats", views.stats),
]
