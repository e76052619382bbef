"""What every module's HTTP routes share: problem details and authentication. Imports no module."""
