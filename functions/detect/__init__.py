"""Detect function: Supabase database webhook -> detection rules -> risk-scored alerts -> SNS/EventBridge."""
