"""RFC timer arithmetic, in seconds as floats (sub-millisecond precision kept).

RFC 5798/9568 section 6.1 define the intervals in centiseconds; the wire carries centiseconds for
v3 and whole seconds for v2 (RFC 3768 section 6.1, where Skew_Time uses a 1 s interval).
"""


def skew_time_s(priority: int, master_adver_int_cs: int, version: int = 3) -> float:
    """Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.

    RFC 3768 (v2) has no learned interval: Skew_Time = (256 - Priority) / 256 seconds.
    """
    if version == 2:
        return (256 - priority) / 256.0
    return (256 - priority) * master_adver_int_cs / 25600.0


def master_down_interval_s(priority: int, master_adver_int_cs: int, version: int = 3) -> float:
    """Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time."""
    return 3 * master_adver_int_cs / 100.0 + skew_time_s(priority, master_adver_int_cs, version)
