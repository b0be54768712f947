"""The Django project the fault harness serves; its settings come from FAULTS_* variables."""
