"""The error every custom executor raises: it names the component and the reason."""


class ComponentError(RuntimeError):
    """A pipeline component failed; `component` names it and the message says why."""

    def __init__(self, component, reason):
        super().__init__(f"{component} failed: {reason}")
        self.component = component
        self.reason = str(reason)
