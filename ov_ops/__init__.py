"""Custom OpenVINO operations shipped with cpmdesk (InfLLM v2 sparse attention lands here)."""
