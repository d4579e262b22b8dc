"""The admin door: the console home page, the Bookmarks pages and their actions, the
dismissal form, the parked streams page, and the audit pages."""
