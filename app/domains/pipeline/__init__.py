"""Pipeline stages per clinic; moving leads through them, conversion and loss."""
