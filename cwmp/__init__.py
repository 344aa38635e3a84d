"""cwmp"""
