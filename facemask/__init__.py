"""facemask: face mask extraction in video sequence."""
