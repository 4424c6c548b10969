"""Diagnostics: errors are values with a file, a JSON pointer and a reason."""


class Diagnostic:
    def __init__(self, file, pointer, reason, severity="error", line=None, column=None):
        self.file = file
        self.pointer = pointer
        self.reason = reason
        self.severity = severity
        self.line = line
        self.column = column

    def __str__(self):
        where = self.file or "<input>"
        if self.line is not None:
            where += ":%d:%d" % (self.line, self.column or 0)
        if self.pointer is not None:
            where += ": #%s" % self.pointer
        return "%s: %s: %s" % (where, self.severity, self.reason)


class GenError(Exception):
    """Raised when something cannot be compiled; carries the diagnostics."""

    def __init__(self, diags):
        if isinstance(diags, Diagnostic):
            diags = [diags]
        # each once: a path's parameter checked for every operation of the path, a $ref reached
        # twice, say the same thing at the same place
        self.diags, seen = [], set()
        for d in diags:
            key = (d.file, d.pointer, d.severity, d.reason)
            if key not in seen:
                seen.add(key)
                self.diags.append(d)
        super().__init__("\n".join(str(d) for d in self.diags))


class Diagnostics:
    """Collects diagnostics during a compilation."""

    def __init__(self):
        self.items = []

    def error(self, file, pointer, reason, **kw):
        self.items.append(Diagnostic(file, pointer, reason, **kw))

    def warning(self, file, pointer, reason, **kw):
        self.items.append(Diagnostic(file, pointer, reason, severity="warning", **kw))

    @property
    def errors(self):
        return [d for d in self.items if d.severity == "error"]

    def raise_if_errors(self):
        if self.errors:
            raise GenError(self.errors)
