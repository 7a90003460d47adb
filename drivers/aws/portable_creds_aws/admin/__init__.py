"""Provisioner for the s3 driver.

``portable-creds admin s3 render|apply|verify|onboard WALLET|offboard WALLET``.
"""
