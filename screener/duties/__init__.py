"""duties"""
