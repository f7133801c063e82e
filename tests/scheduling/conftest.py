import tests.reliability.handlers  # noqa: F401 - registers the test job kinds in this process
