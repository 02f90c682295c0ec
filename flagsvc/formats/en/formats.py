"""Django's own date rendering in the admin (list columns, read-only fields, `date` filters) in the one
admin date format (kernel.timefmt), so that a column Django formats reads like one we format."""

from kernel.timefmt import ADMIN_DATETIME_FORMAT, django_format

DATETIME_FORMAT = django_format(ADMIN_DATETIME_FORMAT)
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
