"""Mixins of the cpu backend, one per op family, each calling fastnn._C."""
