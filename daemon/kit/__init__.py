"""What a component is handed and may use: the component base, its context, the HTTP client
(quota, conditional GET, retries, timing), change detection, publish, quality, the raw archive.

May import ``store`` (the component-state record), ``config`` and the shared leaves.
"""
