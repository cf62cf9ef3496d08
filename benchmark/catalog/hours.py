"""Hours as people read them: seconds under a minute, minutes under an hour, else hours."""


def fmt_hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    return f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"
