"""Auto-configuration profiles (issue 14).

Pure parts: ``aliases`` (+ ``aliases.json``), ``selector``, ``templates``, ``layering`` (effective
configuration and where each value comes from), ``diff`` (against the cache), ``plan`` (the
fewest RPCs). I/O: ``engine`` (the session hook and task outcomes), ``drift`` (the scheduled report).
"""
