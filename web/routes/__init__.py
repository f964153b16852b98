"""Plain HTTP routes: health probes and the widget's static pages."""
