from django.contrib.gis.db import models


class Place(models.Model):
    name = models.CharField(max_length=100)
    location = models.PointField(srid=4326)

    def __str__(self) -> str:
        return self.name


class Zone(models.Model):
    name = models.CharField(max_length=100)
    area = models.PolygonField(srid=4326)

    def __str__(self) -> str:
        return self.name
